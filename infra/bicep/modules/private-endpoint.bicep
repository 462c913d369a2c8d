// One private endpoint for one sub-resource of a service, with the private DNS zone that
// makes the service's usual host name resolve to it inside the network.

@description('Required. Name of the private endpoint.')
param name string

@description('Optional. Region of the endpoint.')
param location string = resourceGroup().location

@description('Optional. Tags of the endpoint and its zone.')
param tags object = {}

@description('Required. Resource ID of the service the endpoint reaches.')
param serviceResourceId string

@description('Required. The service\'s sub-resource (group ID): blob, queue, table, namespace, Sql, redisEnterprise.')
param groupId string

@description('Required. Private DNS zone of that sub-resource, e.g. privatelink.blob.core.windows.net.')
param privateDnsZoneName string

@description('Required. Resource ID of the subnet the endpoint lives in.')
param subnetResourceId string

@description('Required. Resource ID of the virtual network the DNS zone is linked to.')
param virtualNetworkResourceId string

resource zone 'Microsoft.Network/privateDnsZones@2024-06-01' = {
  name: privateDnsZoneName
  location: 'global'
  tags: tags
}

resource link 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = {
  parent: zone
  name: 'vnet-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: virtualNetworkResourceId
    }
  }
}

resource endpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetResourceId
    }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: serviceResourceId
          groupIds: [
            groupId
          ]
        }
      }
    ]
  }
}

resource zoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: replace(privateDnsZoneName, '.', '-')
        properties: {
          privateDnsZoneId: zone.id
        }
      }
    ]
  }
}

@description('The name of the private endpoint.')
output name string = endpoint.name

@description('The resource ID of the private endpoint.')
output resourceId string = endpoint.id
